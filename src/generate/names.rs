//! Invented-person name tables.
//!
//! Lists are in rough order of U.S. frequency (census surname ranks, SSA first-name ranks
//! across the birth cohorts of working-age adults), and a name's weight is
//! `1 / (rank + 8)` — a Zipf-like skew in which the top ten names cover about 12% of
//! people, as in the census tables. They deliberately include the spellings a
//! normalizer must cope with: accents (José, Zoë, Muñoz), hyphens (García-López,
//! Jean-Luc), apostrophes (O'Brien, D'Andre), inner spaces (Mary Ann, De La Cruz) and
//! particles (St. John, Van Der Berg). Only frequency ranks are modelled; no generated
//! person corresponds to a real one.

use std::sync::OnceLock;

use rand_chacha::ChaCha8Rng;

use super::util::pick_weighted;

const MALE: &str = "James, Robert, John, Michael, David, William, Richard, Joseph, Thomas, Christopher, \
Charles, Daniel, Matthew, Anthony, Mark, Donald, Steven, Andrew, Paul, Joshua, Kenneth, Kevin, Brian, \
George, Timothy, Ronald, Jason, Edward, Jeffrey, Ryan, Jacob, Gary, Nicholas, Eric, Jonathan, Stephen, \
Larry, Justin, Scott, Brandon, Benjamin, Samuel, Gregory, Alexander, Patrick, Frank, Raymond, Jack, \
Dennis, Jerry, Tyler, Aaron, José, Adam, Nathan, Henry, Zachary, Douglas, Peter, Kyle, Noah, Ethan, \
Jeremy, Walter, Christian, Keith, Roger, Terry, Austin, Sean, Gerald, Carl, Harold, Dylan, Arthur, \
Lawrence, Jordan, Jesse, Bryan, Billy, Bruce, Gabriel, Joe, Logan, Alan, Juan, Albert, Willie, Elijah, \
Wayne, Randy, Vincent, Mason, Roy, Ralph, Bobby, Russell, Bradley, Philip, Eugene, Louis, Harry, \
Howard, Johnny, Luis, Carlos, Travis, Jesús, Miguel, Victor, Francisco, Shawn, Antonio, Marcus, Curtis, \
Jared, Tony, Isaiah, Derek, Corey, Martin, Luke, Caleb, Jamal, DeShawn, Darnell, Tyrone, Malik, Andre, \
André, Xavier, Ángel, Alejandro, Diego, Manuel, Pedro, Ricardo, Fernando, Javier, Omar, Hector, Rafael, \
Sergio, Eduardo, Raúl, Mohammed, Ahmed, Ali, Hassan, Minh, Duc, Tuan, Hung, Wei, Jian, Hiroshi, Raj, \
Arjun, Vikram, Sanjay, Chukwuemeka, Kwame, Oluwaseun, Dmitri, Ivan, Sergei, Liam, Oliver, Lucas, Aiden, \
Jackson, Carter, Owen, Wyatt, Grayson, Hunter, Connor, Colton, Cameron, Evan, Chase, Ian, Cody, Dustin, \
Brett, Troy, Chad, Shane, Derrick, Leonard, Todd, Stanley, Dale, Glenn, Frederick, Leroy, Clarence, \
Earl, Jimmy, Phillip, Craig, Ricky, Lee, Alvin, Nathaniel, Mitchell, Seth, Trevor, Marvin, Rodney, \
Reginald, Terrence, Cedric, Jean-Luc, Jean-Pierre, Séamus, Declan, D'Andre, Ke'Shawn, Zoltán, Mateo, \
Santiago, Emiliano, Joaquín, Tomás, Nicolás, Bao, Khoa, Cheng, Kenji, Pradeep, Tobias, Elias, Silas, \
Ezekiel, Isaac, Levi, Micah, Roman, Jaxon, Landon, Bentley, Easton, Brody, Kayden, Maverick, Rashad, \
Demetrius, Jermaine, Lamar, Quentin, Dwayne, Darius, Ignacio, Gustavo, Rodrigo, Armando, Enrique, \
Alfredo, Salvador, Ramón, Efraín, Abdul, Yusuf, Karim, Mustafa, Tariq";

const FEMALE: &str = "Mary, Patricia, Jennifer, Linda, Elizabeth, Barbara, Susan, Jessica, Sarah, \
Karen, Lisa, Nancy, Betty, Sandra, Margaret, Ashley, Kimberly, Emily, Donna, Michelle, Carol, Amanda, \
Melissa, Deborah, Stephanie, Dorothy, Rebecca, Sharon, Laura, Cynthia, Amy, Kathleen, Angela, Shirley, \
Brenda, Emma, Anna, Pamela, Nicole, Samantha, Katherine, Christine, Helen, Debra, Rachel, Carolyn, \
Janet, Maria, María, Catherine, Heather, Diane, Olivia, Julie, Joyce, Victoria, Ruth, Virginia, Lauren, \
Kelly, Christina, Joan, Evelyn, Judith, Andrea, Hannah, Megan, Cheryl, Jacqueline, Martha, Madison, \
Teresa, Gloria, Sara, Janice, Ann, Kathryn, Abigail, Sophia, Frances, Jean, Alice, Judy, Isabella, \
Julia, Grace, Amber, Denise, Danielle, Marilyn, Beverly, Charlotte, Natalie, Theresa, Diana, Brittany, \
Doris, Kayla, Alexis, Lori, Marie, Tiffany, Tammy, Crystal, Erica, Monica, Wanda, Yolanda, LaToya, \
Keisha, Tamika, Ebony, Aaliyah, Imani, Jasmine, Destiny, Guadalupe, Rosa, Carmen, Ana, Sofía, Lucía, \
Valentina, Ximena, Camila, Daniela, Gabriela, Alejandra, Alexandra, Verónica, Yesenia, Mariana, Inés, Zoë, Chloé, \
Renée, Noémie, Anh, Linh, Mai, Ngoc, Mei, Xiu, Yuki, Priya, Anjali, Deepa, Fatima, Aisha, Amina, Ngozi, \
Chiamaka, Olga, Svetlana, Natasha, Ava, Mia, Harper, Ella, Avery, Scarlett, Aria, Chloe, Zoe, Lily, \
Layla, Riley, Nora, Addison, Brooke, Taylor, Morgan, Paige, Haley, Courtney, Kristen, Erin, Katie, \
Holly, Lindsey, Vanessa, Tanya, Tracy, Dawn, Rhonda, Wendy, Jill, Stacy, Jenna, Mary-Kate, Anne-Marie, \
Mary Ann, Bridget, Siobhán, Mackenzie, D'Asia, Shaniqua, Allison, Valerie, Leah, Tara, Regina, Rita, \
Norma, Irene, Lillian, Peggy, Connie, Edna, Ella Mae, Francesca, Beatriz, Adriana, Paola, Marisol, \
Araceli, Leticia, Maribel, Esperanza, Dolores, Consuelo, Thuy, Hoa, Trang, Hye-jin, Min-ji, Sunita, \
Kavya, Olamide, Abena, Nadia, Yasmin, Layla-Rose, Madeline, Savannah, Peyton, Kaylee, Makayla, Serenity, \
Ruby, Hazel, Violet, Stella, Penelope, Aurora, Eleanor, Naomi, Lucy, Claire, Caroline, Vivian, Josephine, \
Kendra, Latasha, Shanice, Tasha, Monique, Felicia, Tonya, Sheila, Kristina, Colleen, Meredith";

const SURNAMES: &str = "Smith, Johnson, Williams, Brown, Jones, Garcia, Miller, Davis, Rodriguez, \
Martinez, Hernandez, Lopez, Gonzalez, Wilson, Anderson, Thomas, Taylor, Moore, Jackson, Martin, Lee, \
Perez, Thompson, White, Harris, Sanchez, Clark, Ramirez, Lewis, Robinson, Walker, Young, Allen, King, \
Wright, Scott, Torres, Nguyen, Hill, Flores, Green, Adams, Nelson, Baker, Hall, Rivera, Campbell, \
Mitchell, Carter, Roberts, Gomez, Phillips, Evans, Turner, Diaz, Parker, Cruz, Edwards, Collins, Reyes, \
Stewart, Morris, Morales, Murphy, Cook, Rogers, Gutierrez, Ortiz, Morgan, Cooper, Peterson, Bailey, \
Reed, Kelly, Howard, Ramos, Kim, Cox, Ward, Richardson, Watson, Brooks, Chavez, Wood, James, Bennett, \
Gray, Mendoza, Ruiz, Hughes, Price, Alvarez, Castillo, Sanders, Patel, Myers, Long, Ross, Foster, \
Jimenez, Powell, Jenkins, Perry, Russell, Sullivan, Bell, Coleman, Butler, Henderson, Barnes, Gonzales, \
Fisher, Vasquez, Simmons, Romero, Jordan, Patterson, Alexander, Hamilton, Graham, Reynolds, Griffin, \
Wallace, Moreno, West, Cole, Hayes, Bryant, Herrera, Gibson, Ellis, Tran, Medina, Aguilar, Stevens, \
Murray, Ford, Castro, Marshall, Owens, Harrison, Fernandez, McDonald, Woods, Washington, Kennedy, Wells, \
Vargas, Henry, Chen, Freeman, Webb, Tucker, Guzman, Burns, Crawford, Olson, Simpson, Porter, Hunter, \
Gordon, Mendez, Silva, Shaw, Snyder, Mason, Dixon, Muñoz, Hunt, Hicks, Holmes, Palmer, Wagner, Black, \
Robertson, Boyd, Rose, Stone, Salazar, Fox, Warren, Mills, Meyer, Rice, Schmidt, Garza, Daniels, \
Ferguson, Nichols, Stephens, Soto, Weaver, Ryan, Gardner, Payne, Grant, Dunn, Kelley, Spencer, Hawkins, \
Arnold, Pierce, Vazquez, Hansen, Peters, Santos, Hart, Bradley, Knight, Elliott, Cunningham, Duncan, \
Armstrong, Hudson, Carroll, Lane, Riley, Andrews, Alvarado, Ray, Delgado, Berry, Perkins, Hoffman, \
Johnston, Matthews, Peña, Richards, Contreras, Willis, Carpenter, Lawrence, Sandoval, Guerrero, George, \
Chapman, Rios, Estrada, Ortega, Watkins, Greene, Nuñez, Wheeler, Valdez, Harper, Burke, Larson, \
Santiago, Maldonado, Morrison, Franklin, Carlson, Austin, Dominguez, Carr, Lawson, Jacobs, O'Brien, \
Lynch, Singh, Vega, Bishop, Montgomery, Oliver, Jensen, Harvey, Williamson, Gilbert, Dean, Sims, \
Espinoza, Howell, Li, Wong, Reid, Hanson, Le, McCoy, Garrett, Burton, Fuller, Wang, Weber, Welch, Rojas, \
Lucas, Marquez, Fields, Park, Yang, Little, Banks, Padilla, Day, Walsh, Bowman, Schultz, Luna, Fowler, \
Mejia, Davidson, Acosta, Brewer, May, Holland, Juarez, Newman, Pearson, Curtis, Cortez, Douglas, \
Schneider, Joseph, Barrett, Navarro, Figueroa, Keller, Ávila, Wade, Molina, Stanley, Hopkins, Campos, \
Barnett, Bates, Chambers, Caldwell, Beck, Lambert, Miranda, Byrd, Craig, Ayala, Lowe, Frazier, Powers, \
Neal, Leonard, Gregory, Carrillo, Sutton, Fleming, Rhodes, Shelton, Schwartz, Norris, Jennings, Watts, \
Duran, Walters, Cohen, McDaniel, Moran, Parks, Steele, Vaughn, Becker, Holt, DeLeon, Barker, Terry, \
Hale, Leon, Benson, Haynes, Horton, Miles, Lyons, Pham, Graves, Bush, Thornton, Wolfe, Warner, Cabrera, \
McKinney, Mann, Zimmerman, Dawson, Lara, Fletcher, Page, McCarthy, Love, Robles, Cervantes, Solis, \
Erickson, Reeves, Chang, Klein, Salinas, Fuentes, Baldwin, Simon, Velasquez, Hardy, Higgins, Aguirre, \
Lin, Cummings, Chandler, Sharp, Barber, Bowen, Ochoa, Dennis, Robbins, Liu, Ramsey, Francis, Griffith, \
Blair, O'Connor, Cardenas, Pacheco, Cross, Calderon, Quinn, Moss, Swanson, Chan, Rivas, Khan, Rodgers, \
Serrano, Fitzgerald, Rosales, Stevenson, Christensen, Manning, Gill, Curry, McLaughlin, Harmon, McGee, \
Gross, Doyle, Garner, Newton, Burgess, Reese, Walton, Blake, Trujillo, Adkins, Brady, Goodman, Roman, \
Webster, Goodwin, Fischer, Huang, Potter, De La Cruz, Montoya, Todd, Wu, Hines, Mullins, Castañeda, \
Malone, Cannon, Tate, Mack, Sherman, Hubbard, Hodges, Zhang, Guerra, Wolf, Valencia, Saunders, Franco, \
Rowe, Gallagher, Farmer, Hammond, Hampton, Townsend, Ingram, Wise, Gallegos, Clarke, Barton, Schroeder, \
Maxwell, Waters, Logan, Camacho, Strickland, Norman, Colón, Parsons, Frank, Harrington, Glover, Osborne, \
Buchanan, Casey, Floyd, Patton, Ibarra, Ball, Tyler, Suarez, Bowers, Orozco, Salas, Cobb, Gibbs, \
Andrade, Bauer, Conner, Moody, Escobar, McGuire, Lloyd, Müller, Hartman, French, Kramer, McBride, Pope, \
Lindsey, Velazquez, Norton, McCormick, Sparks, Flynn, Yates, Hogan, Marsh, Macias, Villanueva, Zamora, \
Pratt, Stokes, Owen, Ballard, Lang, Brock, Villarreal, Charles, Drake, Barrera, Cain, Patrick, Burnett, \
Mercado, Santana, Shepherd, Bautista, Ali, Shaffer, Lamb, Treviño, McKenzie, Hess, Olsen, Cochran, \
Morton, Nash, Wilkins, Petersen, Briggs, Shah, Roth, Nicholson, Holloway, Lozano, Rangel, Flowers, \
Hoover, Short, Arias, Mora, Valenzuela, Bryan, Meyers, Weiss, Underwood, Bass, Greer, Summers, Houston, \
Carson, Morrow, Clayton, Whitaker, Decker, Yoder, Collier, Zuniga, Carey, Wilcox, Melendez, Poole, \
Roberson, Larsen, Conley, Davenport, Copeland, Massey, Lam, Huff, Rocha, Cameron, Jefferson, Hood, \
Monroe, Pittman, Huynh, Randall, Singleton, Kirk, Combs, Mathis, Skinner, Bradford, Galvan, Wall, Boone, \
Kirby, Wilkinson, Bridges, Bruce, Atkinson, Velez, Meza, Roy, Vincent, York, Hodge, Villa, Abbott, \
García-López, Smith-Jones, Rodríguez-Pérez, St. John, Van Der Berg, D'Angelo, D'Amico, MacArthur, \
O'Malley, O'Neill, Ibáñez, Öztürk, Kowalski, Nowak, Wiśniewski, Okafor, Adeyemi, Mensah, Osei, Haddad, \
Nasser, Abdullah, Yilmaz, Ivanov, Petrov, Popescu, Papadopoulos, Rossi, Esposito, Romano, Dubois, \
Lefèvre, Nakamura, Tanaka, Watanabe, Suzuki, Yamamoto, Gupta, Sharma, Kumar, Reddy, Iyer, Xiong, Vang, \
Her, Lor, Moua, Thao, Vu, Vo, Truong, Phan, Dang, Do, Bui, Ho, Ngo, Duong, Lim, Choi, Jung, Kang, Cho, \
Yoon, Jang, Lu, Zhao, Zhou, Sun, Ma, Zhu, Hu, Guo, Ahmed, Hussain, Rahman, Mahmoud, Ibrahim, Yusuf";

/// Nicknames people give instead of their formal first name (Robert → Bob, …).
pub(crate) const NICKNAMES: &[(&str, &[&str])] = &[
    ("Robert", &["Bob", "Rob", "Bobby"]),
    ("William", &["Bill", "Will", "Billy"]),
    ("Elizabeth", &["Liz", "Beth", "Betty", "Eliza"]),
    ("Jennifer", &["Jen", "Jenny"]),
    ("Michael", &["Mike", "Mikey"]),
    ("Katherine", &["Kate", "Kathy", "Katie"]),
    ("Catherine", &["Cathy", "Kate"]),
    ("Kathleen", &["Kathy", "Kat"]),
    ("James", &["Jim", "Jimmy", "Jamie"]),
    ("John", &["Johnny", "Jack"]),
    ("Richard", &["Rick", "Rich", "Dick"]),
    ("Thomas", &["Tom", "Tommy"]),
    ("Christopher", &["Chris", "Topher"]),
    ("Daniel", &["Dan", "Danny"]),
    ("Matthew", &["Matt"]),
    ("Anthony", &["Tony"]),
    ("Joseph", &["Joe", "Joey"]),
    ("Charles", &["Chuck", "Charlie"]),
    ("Edward", &["Ed", "Eddie", "Ted"]),
    ("Andrew", &["Andy", "Drew"]),
    ("Joshua", &["Josh"]),
    ("Nicholas", &["Nick"]),
    ("Benjamin", &["Ben", "Benny"]),
    ("Samuel", &["Sam", "Sammy"]),
    ("Alexander", &["Alex", "Xander"]),
    ("Jonathan", &["Jon"]),
    ("Timothy", &["Tim", "Timmy"]),
    ("Steven", &["Steve"]),
    ("Stephen", &["Steve"]),
    ("Gregory", &["Greg"]),
    ("Kenneth", &["Ken", "Kenny"]),
    ("Ronald", &["Ron", "Ronnie"]),
    ("Donald", &["Don", "Donnie"]),
    ("Raymond", &["Ray"]),
    ("Lawrence", &["Larry"]),
    ("Jeffrey", &["Jeff"]),
    ("Gerald", &["Jerry"]),
    ("Douglas", &["Doug"]),
    ("Peter", &["Pete"]),
    ("Frederick", &["Fred", "Freddie"]),
    ("Zachary", &["Zach"]),
    ("Nathaniel", &["Nate", "Nat"]),
    ("Nathan", &["Nate"]),
    ("Jacob", &["Jake"]),
    ("Leonard", &["Leo", "Len"]),
    ("Vincent", &["Vince"]),
    ("Phillip", &["Phil"]),
    ("Philip", &["Phil"]),
    ("Walter", &["Walt"]),
    ("Albert", &["Al", "Bert"]),
    ("Eugene", &["Gene"]),
    ("Harold", &["Hal", "Harry"]),
    ("Henry", &["Hank", "Harry"]),
    ("Gabriel", &["Gabe"]),
    ("Francisco", &["Paco", "Pancho", "Frank"]),
    ("José", &["Pepe", "Joe"]),
    ("Alejandro", &["Alex", "Alejo"]),
    ("Patricia", &["Pat", "Patty", "Trish"]),
    ("Margaret", &["Maggie", "Peggy", "Meg"]),
    ("Susan", &["Sue", "Susie"]),
    ("Deborah", &["Deb", "Debbie"]),
    ("Debra", &["Deb", "Debbie"]),
    ("Rebecca", &["Becky", "Becca"]),
    ("Jessica", &["Jess", "Jessie"]),
    ("Kimberly", &["Kim"]),
    ("Christine", &["Chris", "Tina"]),
    ("Christina", &["Tina", "Chris"]),
    ("Victoria", &["Vicky", "Tori"]),
    ("Samantha", &["Sam", "Sammy"]),
    ("Abigail", &["Abby"]),
    ("Pamela", &["Pam"]),
    ("Cynthia", &["Cindy"]),
    ("Sandra", &["Sandy"]),
    ("Dorothy", &["Dot", "Dottie"]),
    ("Barbara", &["Barb"]),
    ("Theresa", &["Terri", "Tess"]),
    ("Teresa", &["Terri"]),
    ("Judith", &["Judy"]),
    ("Jacqueline", &["Jackie"]),
    ("Stephanie", &["Steph"]),
    ("Madison", &["Maddie"]),
    ("Allison", &["Ally"]),
    ("Valerie", &["Val"]),
    ("Isabella", &["Bella", "Izzy"]),
    ("Olivia", &["Liv"]),
    ("Emily", &["Em", "Emmy"]),
    ("Angela", &["Angie"]),
    ("Melissa", &["Missy", "Mel"]),
    ("Amanda", &["Mandy"]),
    ("Virginia", &["Ginny"]),
    ("Eleanor", &["Ellie", "Nora"]),
    ("Guadalupe", &["Lupe"]),
    ("Beatriz", &["Bea"]),
    ("Alexandra", &["Alex", "Lexi"]),
    ("Gabriela", &["Gabby"]),
    ("Josephine", &["Josie", "Jo"]),
    ("Frances", &["Fran"]),
];

/// A frequency-ranked name list with its cumulative weights.
pub(crate) struct NameTable {
    pub names: Vec<&'static str>,
    cumulative: Vec<f64>,
}

impl NameTable {
    fn new(list: &'static str) -> NameTable {
        let names: Vec<&'static str> = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        let mut total = 0.0;
        let cumulative = (0..names.len())
            .map(|rank| {
                total += 1.0 / (rank as f64 + 8.0);
                total
            })
            .collect();
        NameTable { names, cumulative }
    }

    pub(crate) fn sample(&self, rng: &mut ChaCha8Rng) -> &'static str {
        self.names[pick_weighted(rng, &self.cumulative)]
    }
}

pub(crate) struct Names {
    pub male: NameTable,
    pub female: NameTable,
    pub surnames: NameTable,
}

/// The tables, parsed once.
pub(crate) fn names() -> &'static Names {
    static NAMES: OnceLock<Names> = OnceLock::new();
    NAMES.get_or_init(|| Names {
        male: NameTable::new(MALE),
        female: NameTable::new(FEMALE),
        surnames: NameTable::new(SURNAMES),
    })
}

/// The nicknames of a formal first name, if it has any.
pub(crate) fn nicknames_of(first: &str) -> &'static [&'static str] {
    NICKNAMES
        .iter()
        .find(|(formal, _)| *formal == first)
        .map(|(_, n)| *n)
        .unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn tables_are_large_and_distinct() {
        let n = names();
        assert!(n.male.names.len() >= 200, "{}", n.male.names.len());
        assert!(n.female.names.len() >= 200, "{}", n.female.names.len());
        assert!(n.surnames.names.len() >= 500, "{}", n.surnames.names.len());
        for t in [&n.male, &n.female, &n.surnames] {
            let set: HashSet<_> = t.names.iter().collect();
            assert_eq!(set.len(), t.names.len(), "a name is listed twice");
        }
        for (formal, _) in NICKNAMES {
            assert!(
                n.male.names.contains(formal) || n.female.names.contains(formal),
                "{formal} has nicknames but is not in a first-name table"
            );
        }
    }
}
